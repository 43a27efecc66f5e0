"""Everything that talks to the EVM chain: local node lifecycle, connection, contracts."""
