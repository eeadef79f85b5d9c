"""Telegram channel."""
