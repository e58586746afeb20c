"""Options: Black-Scholes-Merton Greeks and implied volatility, time to expiry on NSE trading
days, option contracts (instrument master first, symbol parser as fallback) and the per-underlying
option chain shown to detectors."""
