"""Shipped run recipes, installed as package data `agent_lightning.configs` (`--config tiny` finds tiny.yaml here).

Each YAML file starts with the command that runs it; accelerate/ and deepspeed/ hold launcher configs.
"""
