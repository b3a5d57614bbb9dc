"""Tool calling: planning a request's tools, the formats models write calls
in, streaming extraction of calls from text, and grammars that force calls.
May import the domain types, templates/ (what a template reads) and grammar/."""
