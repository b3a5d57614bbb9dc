"""The ids the test models folder serves its models under."""

DEFAULT_MODEL_ID = "gemma-3-270m-q4_k_m"
TINY_MODEL_ID = "tiny"
# The instruct model of tests.helpers.instruct_model, served by the instruct_server fixture.
INSTRUCT_MODEL_ID = "qwen2.5-coder-0.5b-instruct-q4_k_m"
