"""Finance: export batches, ERP settings and the file builders (Sage 300 CRE, QuickBooks IIF, CSV, XLSX)."""
