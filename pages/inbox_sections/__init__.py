"""The Inbox page's sections."""
