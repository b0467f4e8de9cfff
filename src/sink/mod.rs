//! Sink: where batches go (file, stdout, Elasticsearch, Loki, OTLP). Sinks know nothing of
//! files: they receive encoded batches and answer with acknowledgements.
