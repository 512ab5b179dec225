"""(commands registered by this module are added as the feature lands)"""
