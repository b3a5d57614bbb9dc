"""Every router of the OpenAI API, for the app to include."""

from hearth.adapter.openai.routes import chat, completions, embeddings, models, tokenize

ROUTERS = [module.router for module in (models, chat, completions, embeddings, tokenize)]
