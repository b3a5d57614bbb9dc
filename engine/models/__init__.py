"""The models on disk: the registry of the models folder and config file,
GGUF metadata read without loading weights, the config file's model entries,
deletes and copies, capabilities, pulls from Hugging Face. Never imports
llama_cpp (a file is checked by llama.cpp in a throwaway process)."""
