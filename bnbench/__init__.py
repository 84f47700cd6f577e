"""bnbench: does Batch Normalization help this network, how much, how surely, and how fast?"""
