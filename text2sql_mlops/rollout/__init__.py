"""`rollout`: the multi-turn repair loop with execution feedback, rewards, metrics, resumable run folders."""
