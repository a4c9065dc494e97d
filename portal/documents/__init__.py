"""Documents: the PDFs of billings and client claims."""
