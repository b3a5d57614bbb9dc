"""Settings as typed classes, read from flags, LLM_* variables and the config
file's "settings" object: the engine's, the adapter's, and the file source
they share. Ground floor: the processes, the desktop and the CLI all read them."""
