"""Replaceable parts of the appliance, each chosen by settings through one small registry."""
