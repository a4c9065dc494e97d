"""HC/Client progress claims (upstream) and PDFs: views on the admin blueprint."""
