"""aion: intraday market scanner for NSE on Zerodha Kite Connect ticks."""

__version__ = "0.1.0"
