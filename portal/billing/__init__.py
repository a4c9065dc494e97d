"""Downstream billing: periods, invitations, billings and their workflow, figures, attachments, dashboards."""
