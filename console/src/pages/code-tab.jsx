// The Code tab: the function's files in the editor (or its uploaded binary), deploy, and the
// build followed live with its errors marked at their lines.
import { useEffect, useState } from "preact/hooks";
import { api, fn } from "../api.js";
import { Notice } from "../components.jsx";
import { BuildWatch, errorsFromLog } from "../build.jsx";
import { FunctionForm } from "../form.jsx";
import { parseHash } from "../router.js";
import { errorText, fmtBytes } from "../util.js";
import { runtime as runtimeInfo } from "../runtimes.js";

export function CodeTab({ record, onChange }) {
  const [files, setFiles] = useState(null);
  const [watch, setWatch] = useState(() => Number(parseHash().query.build) || null);
  const [errors, setErrors] = useState([]);
  const [error, setError] = useState(null);
  const [binary, setBinary] = useState(null);

  useEffect(() => {
    let gone = false;
    if (!runtimeInfo(record.runtime).source) { setBinary(true); setFiles({}); return undefined; }
    api.get(`${fn(record.id)}/code`).then(
      (data) => { if (!gone) typeof data === "object" && data && data.files ? setFiles(data.files) : (setBinary(true), setFiles({})); },
      (e) => !gone && (e.status === 404 ? setFiles({}) : setError(e)),
    );
    return () => { gone = true; };
  }, [record.id]);

  const ended = (build) => {
    onChange();
    if (build.status === "failed") {
      const structured = Array.isArray(build.errors) && build.errors.length ? build.errors : null;
      setErrors(structured || errorsFromLog(build.log || "", Object.keys(files || {})));
    } else {
      setErrors([]);
    }
  };
  return (
    <div class="code-tab">
      <Notice>{error && errorText(error)}</Notice>
      {binary && <p class="muted">This function runs an uploaded binary ({fmtBytes(record.code_size)}). Upload a new one to deploy a new version.</p>}
      {files === null ? <p class="muted">Loading code…</p> : (
        <FunctionForm
          fnRecord={record}
          files={files}
          errors={errors}
          onSaved={(saved, version) => {
            onChange(saved);
            if (version) { setErrors([]); setWatch(version); }
          }}
        />
      )}
      {watch && <BuildWatch ref_={record.id} version={watch} key={watch} onEnd={ended} />}
    </div>
  );
}
