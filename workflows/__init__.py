"""The Mistral v2 workflows of the pack, one workflow per YAML file."""
