"""Writers that publish warehouse results to destinations (Google Sheets tabs)."""
