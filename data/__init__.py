"""Small data shipped with the package (`agent_lightning.data`): seed SOPs for memory (sops/)."""
