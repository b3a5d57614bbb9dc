"""The OpenAI API's routes: thin, they translate and delegate."""
