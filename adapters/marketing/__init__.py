"""adapters/marketing"""
