//! Watch-only BIP32 derivation (placeholder; being written).
