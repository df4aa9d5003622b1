"""Knowledge bases: load documents, chunk them, embed and index them, retrieve and answer with citations."""
