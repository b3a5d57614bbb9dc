"""GBNF grammars from JSON Schemas: schemas made safe to convert, the
converter (llama.cpp's, through llama/), integer bounds. May import errors and llama/."""
