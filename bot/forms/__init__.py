"""Forms declared once and run by both the chat and the web: fields, their parsers and checks."""
