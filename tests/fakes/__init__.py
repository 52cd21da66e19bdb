"""Local stand-ins for the outside world (SMS vendors, webhooks), served on 127.0.0.1."""
