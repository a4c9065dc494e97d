"""Mail: the transactional outbox and its worker."""
