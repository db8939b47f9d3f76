"""Files in and out: atomic writes, PNG/MP4/GIF (`files`), folders of samples (`folders`), result stores
(`store`), pixel conversions (`video`), and the checks every input gets before any work (`checks`)."""
