"""Accounts: staff users, passwords, sign-in, magic links and API tokens."""
