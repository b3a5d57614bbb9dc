"""What the tests share: tiny GGUF files, hostile ones, real Hearth processes, a Hugging Face stand-in, the desktop script driver."""
