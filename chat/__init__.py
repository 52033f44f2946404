"""Parlor: a private chat app for open models, on Gradio."""
