"""Channel adapters (Telegram, VK, email, phone robot, web chat) and the citizen bot."""
