"""`imagen console`: a web page on 127.0.0.1 over the jobs and the bucket (the [console] extra).

serve (the entry) → app (routes) → security (the guard), queries, live, views, forms, submit,
objects, previews (libvips, bounded), overview, probes; static/ holds the page's files.
"""
