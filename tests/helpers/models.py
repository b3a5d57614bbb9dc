"""The ids the test models folder serves its models under."""

DEFAULT_MODEL_ID = "gemma-3-270m-q4_k_m"
TINY_MODEL_ID = "tiny"
