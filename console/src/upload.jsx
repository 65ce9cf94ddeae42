// Choosing a binary: file picker or drag-and-drop, with the upload's progress.
import { useState } from "preact/hooks";
import { fmtBytes } from "./util.js";

export function UploadBox({ file, onFile, progress, accept }) {
  const [over, setOver] = useState(false);
  const drop = (e) => {
    e.preventDefault();
    setOver(false);
    const f = e.dataTransfer.files && e.dataTransfer.files[0];
    if (f) onFile(f);
  };
  return (
    <div
      class={`dropzone ${over ? "over" : ""}`}
      onDragOver={(e) => { e.preventDefault(); setOver(true); }}
      onDragLeave={() => setOver(false)}
      onDrop={drop}
      data-testid="dropzone"
    >
      <p>Drop a {accept === ".wasm" ? ".wasm module or component" : "binary"} here, or</p>
      <label class="button">
        Choose a file
        <input type="file" class="visually-hidden" accept={accept || undefined} aria-label="artifact file"
          onChange={(e) => e.currentTarget.files[0] && onFile(e.currentTarget.files[0])} />
      </label>
      {file && <p class="chosen"><strong>{file.name}</strong> — {fmtBytes(file.size)}</p>}
      {progress !== null && progress !== undefined && (
        <div class="progress-row">
          <progress max="1" value={progress} aria-label="upload progress" />
          <span>{Math.round(progress * 100)}%</span>
        </div>
      )}
    </div>
  );
}
