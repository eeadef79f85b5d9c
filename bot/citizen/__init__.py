"""The citizen bot: one dialogue engine that every chat channel (Telegram, web chat) drives."""
