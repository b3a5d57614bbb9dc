"""One request's generation, short of running it: the validation gate and its
limits, the prepare step (output plan and prompt tokens in one blocking call),
and what each sequence's output becomes (text, stop strings, tool calls).
May import the domain types, llama/, templates/, tools/ and grammar/."""
