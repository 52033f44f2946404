"""Parlor: `python app.py` serves the chat app (see README.md; the steps are in chat/launch.py)."""

from chat.launch import main

if __name__ == "__main__":
    main()
