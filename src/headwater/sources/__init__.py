"""Readers that turn a source (Google Sheet, local workbook) into RawTable grids of text cells."""
