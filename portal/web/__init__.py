"""Web glue shared by the blueprints: error pages, security headers, template filters, URLs, log redaction."""
