"""Text-to-speech backends used to build spoken task variants (and the bundled mini tasks)."""
