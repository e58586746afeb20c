"""Operations: ``aion health``, the nightly ``aion audit`` and structured logging."""
