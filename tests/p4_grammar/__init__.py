"""An independent P4-16 syntax and declaration checker for the P4 target's output (p4c stand-in)."""
