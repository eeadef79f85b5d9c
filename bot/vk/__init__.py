"""Vk channel."""
