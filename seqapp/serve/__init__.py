"""`seqapp serve`: a local web page to write with a language model and listen with a keyword spotter. An ASGI
app (Starlette on uvicorn) that runs the tasks' own library code: text.generate for writing, speech.spotter
for listening and for files, so the page gives what the CLI gives."""
