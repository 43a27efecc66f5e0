"""The ``konbit`` subcommands that have grown their own module (``konbit.cli`` registers them).

The command line is a channel: these modules may use runtime, services and everything below
them, and nothing below a channel imports them.
"""
