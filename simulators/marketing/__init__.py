"""simulators/marketing"""
