"""The log's contract, shipped in the wheel as ``services.schemas``: see README.md here."""
