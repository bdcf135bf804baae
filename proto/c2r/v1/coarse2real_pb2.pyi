from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ProtocolVersion(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROTOCOL_VERSION_UNSPECIFIED: _ClassVar[ProtocolVersion]
    PROTOCOL_MAJOR: _ClassVar[ProtocolVersion]
    PROTOCOL_MINOR: _ClassVar[ProtocolVersion]

class DType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DTYPE_UNSPECIFIED: _ClassVar[DType]
    UINT8: _ClassVar[DType]
    FLOAT16: _ClassVar[DType]
    FLOAT32: _ClassVar[DType]

class ColorSpace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COLOR_SPACE_UNSPECIFIED: _ClassVar[ColorSpace]
    SRGB: _ClassVar[ColorSpace]
    LINEAR: _ClassVar[ColorSpace]

class DepthKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEPTH_KIND_UNSPECIFIED: _ClassVar[DepthKind]
    DISTANCE: _ClassVar[DepthKind]
    INVERSE: _ClassVar[DepthKind]

class Transport(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRANSPORT_UNSPECIFIED: _ClassVar[Transport]
    BYTES: _ClassVar[Transport]
    SHARED_MEMORY: _ClassVar[Transport]

class Buffer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BUFFER_UNSPECIFIED: _ClassVar[Buffer]
    COLOR: _ClassVar[Buffer]
    DEPTH: _ClassVar[Buffer]
    NORMALS: _ClassVar[Buffer]
    EDGES: _ClassVar[Buffer]

class ResultEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_ENCODING_UNSPECIFIED: _ClassVar[ResultEncoding]
    RAW_RGB8: _ClassVar[ResultEncoding]
    PNG: _ClassVar[ResultEncoding]

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    MP4: _ClassVar[OutputFormat]
    PNG_SEQUENCE: _ClassVar[OutputFormat]
    EXR_SEQUENCE: _ClassVar[OutputFormat]

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    PENDING: _ClassVar[JobState]
    RUNNING: _ClassVar[JobState]
    SUCCEEDED: _ClassVar[JobState]
    FAILED: _ClassVar[JobState]
    CANCELLED: _ClassVar[JobState]
PROTOCOL_VERSION_UNSPECIFIED: ProtocolVersion
PROTOCOL_MAJOR: ProtocolVersion
PROTOCOL_MINOR: ProtocolVersion
DTYPE_UNSPECIFIED: DType
UINT8: DType
FLOAT16: DType
FLOAT32: DType
COLOR_SPACE_UNSPECIFIED: ColorSpace
SRGB: ColorSpace
LINEAR: ColorSpace
DEPTH_KIND_UNSPECIFIED: DepthKind
DISTANCE: DepthKind
INVERSE: DepthKind
TRANSPORT_UNSPECIFIED: Transport
BYTES: Transport
SHARED_MEMORY: Transport
BUFFER_UNSPECIFIED: Buffer
COLOR: Buffer
DEPTH: Buffer
NORMALS: Buffer
EDGES: Buffer
RESULT_ENCODING_UNSPECIFIED: ResultEncoding
RAW_RGB8: ResultEncoding
PNG: ResultEncoding
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
MP4: OutputFormat
PNG_SEQUENCE: OutputFormat
EXR_SEQUENCE: OutputFormat
JOB_STATE_UNSPECIFIED: JobState
PENDING: JobState
RUNNING: JobState
SUCCEEDED: JobState
FAILED: JobState
CANCELLED: JobState
KNOB_FIELD_NUMBER: _ClassVar[int]
knob: _descriptor.FieldDescriptor

class Plane(_message.Message):
    __slots__ = ("dtype", "shape", "data", "offset")
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SHAPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    dtype: DType
    shape: _containers.RepeatedScalarFieldContainer[int]
    data: bytes
    offset: int
    def __init__(self, dtype: _Optional[_Union[DType, str]] = ..., shape: _Optional[_Iterable[int]] = ..., data: _Optional[bytes] = ..., offset: _Optional[int] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("index", "color", "color_space", "depth", "depth_kind", "normals", "edges", "slot")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    COLOR_SPACE_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    DEPTH_KIND_FIELD_NUMBER: _ClassVar[int]
    NORMALS_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    SLOT_FIELD_NUMBER: _ClassVar[int]
    index: int
    color: Plane
    color_space: ColorSpace
    depth: Plane
    depth_kind: DepthKind
    normals: Plane
    edges: Plane
    slot: int
    def __init__(self, index: _Optional[int] = ..., color: _Optional[_Union[Plane, _Mapping]] = ..., color_space: _Optional[_Union[ColorSpace, str]] = ..., depth: _Optional[_Union[Plane, _Mapping]] = ..., depth_kind: _Optional[_Union[DepthKind, str]] = ..., normals: _Optional[_Union[Plane, _Mapping]] = ..., edges: _Optional[_Union[Plane, _Mapping]] = ..., slot: _Optional[int] = ...) -> None: ...

class FrameBatch(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Frame]
    def __init__(self, frames: _Optional[_Iterable[_Union[Frame, _Mapping]]] = ...) -> None: ...

class SharedRing(_message.Message):
    __slots__ = ("name", "slots", "slot_bytes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    SLOT_BYTES_FIELD_NUMBER: _ClassVar[int]
    name: str
    slots: int
    slot_bytes: int
    def __init__(self, name: _Optional[str] = ..., slots: _Optional[int] = ..., slot_bytes: _Optional[int] = ...) -> None: ...

class RingStatus(_message.Message):
    __slots__ = ("attached", "reason")
    ATTACHED_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    attached: bool
    reason: str
    def __init__(self, attached: _Optional[bool] = ..., reason: _Optional[str] = ...) -> None: ...

class SlotsReleased(_message.Message):
    __slots__ = ("slots",)
    SLOTS_FIELD_NUMBER: _ClassVar[int]
    slots: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, slots: _Optional[_Iterable[int]] = ...) -> None: ...

class SessionConfig(_message.Message):
    __slots__ = ("protocol_major", "protocol_minor", "client_name", "prompt", "negative_prompt", "model", "quality", "steps", "guidance", "seed", "window", "overlap", "strength", "buffers", "result_encoding", "resolution", "preview_every", "lora", "guidance_mode", "control_scale", "input_fps", "transport", "batches", "chaining", "anchor_every")
    PROTOCOL_MAJOR_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    OVERLAP_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    BUFFERS_FIELD_NUMBER: _ClassVar[int]
    RESULT_ENCODING_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_EVERY_FIELD_NUMBER: _ClassVar[int]
    LORA_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_MODE_FIELD_NUMBER: _ClassVar[int]
    CONTROL_SCALE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FPS_FIELD_NUMBER: _ClassVar[int]
    TRANSPORT_FIELD_NUMBER: _ClassVar[int]
    BATCHES_FIELD_NUMBER: _ClassVar[int]
    CHAINING_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_EVERY_FIELD_NUMBER: _ClassVar[int]
    protocol_major: int
    protocol_minor: int
    client_name: str
    prompt: str
    negative_prompt: str
    model: str
    quality: str
    steps: int
    guidance: float
    seed: int
    window: int
    overlap: int
    strength: float
    buffers: _containers.RepeatedScalarFieldContainer[Buffer]
    result_encoding: ResultEncoding
    resolution: str
    preview_every: int
    lora: str
    guidance_mode: str
    control_scale: float
    input_fps: float
    transport: Transport
    batches: bool
    chaining: str
    anchor_every: int
    def __init__(self, protocol_major: _Optional[int] = ..., protocol_minor: _Optional[int] = ..., client_name: _Optional[str] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., model: _Optional[str] = ..., quality: _Optional[str] = ..., steps: _Optional[int] = ..., guidance: _Optional[float] = ..., seed: _Optional[int] = ..., window: _Optional[int] = ..., overlap: _Optional[int] = ..., strength: _Optional[float] = ..., buffers: _Optional[_Iterable[_Union[Buffer, str]]] = ..., result_encoding: _Optional[_Union[ResultEncoding, str]] = ..., resolution: _Optional[str] = ..., preview_every: _Optional[int] = ..., lora: _Optional[str] = ..., guidance_mode: _Optional[str] = ..., control_scale: _Optional[float] = ..., input_fps: _Optional[float] = ..., transport: _Optional[_Union[Transport, str]] = ..., batches: _Optional[bool] = ..., chaining: _Optional[str] = ..., anchor_every: _Optional[int] = ...) -> None: ...

class EndOfStream(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Cancel(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("config", "frame", "end", "cancel", "ring", "frames")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    CANCEL_FIELD_NUMBER: _ClassVar[int]
    RING_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    frame: Frame
    end: EndOfStream
    cancel: Cancel
    ring: SharedRing
    frames: FrameBatch
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., frame: _Optional[_Union[Frame, _Mapping]] = ..., end: _Optional[_Union[EndOfStream, _Mapping]] = ..., cancel: _Optional[_Union[Cancel, _Mapping]] = ..., ring: _Optional[_Union[SharedRing, _Mapping]] = ..., frames: _Optional[_Union[FrameBatch, _Mapping]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "effective", "warnings")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECTIVE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    effective: SessionConfig
    warnings: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, session_id: _Optional[str] = ..., effective: _Optional[_Union[SessionConfig, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("kind", "window", "step", "num_steps", "first_frame", "end_frame", "eta_seconds", "queue_position", "frames_received", "frames_returned")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        KIND_UNSPECIFIED: _ClassVar[Progress.Kind]
        QUEUED: _ClassVar[Progress.Kind]
        STARTED: _ClassVar[Progress.Kind]
        STEP: _ClassVar[Progress.Kind]
        WINDOW_DONE: _ClassVar[Progress.Kind]
    KIND_UNSPECIFIED: Progress.Kind
    QUEUED: Progress.Kind
    STARTED: Progress.Kind
    STEP: Progress.Kind
    WINDOW_DONE: Progress.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    NUM_STEPS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_FRAME_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RETURNED_FIELD_NUMBER: _ClassVar[int]
    kind: Progress.Kind
    window: int
    step: int
    num_steps: int
    first_frame: int
    end_frame: int
    eta_seconds: float
    queue_position: int
    frames_received: int
    frames_returned: int
    def __init__(self, kind: _Optional[_Union[Progress.Kind, str]] = ..., window: _Optional[int] = ..., step: _Optional[int] = ..., num_steps: _Optional[int] = ..., first_frame: _Optional[int] = ..., end_frame: _Optional[int] = ..., eta_seconds: _Optional[float] = ..., queue_position: _Optional[int] = ..., frames_received: _Optional[int] = ..., frames_returned: _Optional[int] = ...) -> None: ...

class ResultFrame(_message.Message):
    __slots__ = ("index", "color", "png", "preview")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    PNG_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    index: int
    color: Plane
    png: bytes
    preview: bool
    def __init__(self, index: _Optional[int] = ..., color: _Optional[_Union[Plane, _Mapping]] = ..., png: _Optional[bytes] = ..., preview: _Optional[bool] = ...) -> None: ...

class ResultBatch(_message.Message):
    __slots__ = ("frames",)
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[ResultFrame]
    def __init__(self, frames: _Optional[_Iterable[_Union[ResultFrame, _Mapping]]] = ...) -> None: ...

class Warning(_message.Message):
    __slots__ = ("message",)
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    message: str
    def __init__(self, message: _Optional[str] = ...) -> None: ...

class Done(_message.Message):
    __slots__ = ("frames_received", "frames_returned", "seconds")
    FRAMES_RECEIVED_FIELD_NUMBER: _ClassVar[int]
    FRAMES_RETURNED_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    frames_received: int
    frames_returned: int
    seconds: float
    def __init__(self, frames_received: _Optional[int] = ..., frames_returned: _Optional[int] = ..., seconds: _Optional[float] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("started", "progress", "result", "warning", "done", "ring", "released", "results")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    RING_FIELD_NUMBER: _ClassVar[int]
    RELEASED_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    started: SessionStarted
    progress: Progress
    result: ResultFrame
    warning: Warning
    done: Done
    ring: RingStatus
    released: SlotsReleased
    results: ResultBatch
    def __init__(self, started: _Optional[_Union[SessionStarted, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ..., result: _Optional[_Union[ResultFrame, _Mapping]] = ..., warning: _Optional[_Union[Warning, _Mapping]] = ..., done: _Optional[_Union[Done, _Mapping]] = ..., ring: _Optional[_Union[RingStatus, _Mapping]] = ..., released: _Optional[_Union[SlotsReleased, _Mapping]] = ..., results: _Optional[_Union[ResultBatch, _Mapping]] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ("protocol_major", "protocol_minor", "client_name")
    PROTOCOL_MAJOR_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLIENT_NAME_FIELD_NUMBER: _ClassVar[int]
    protocol_major: int
    protocol_minor: int
    client_name: str
    def __init__(self, protocol_major: _Optional[int] = ..., protocol_minor: _Optional[int] = ..., client_name: _Optional[str] = ...) -> None: ...

class Gpu(_message.Message):
    __slots__ = ("index", "name", "total_bytes", "free_bytes")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    FREE_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    name: str
    total_bytes: int
    free_bytes: int
    def __init__(self, index: _Optional[int] = ..., name: _Optional[str] = ..., total_bytes: _Optional[int] = ..., free_bytes: _Optional[int] = ...) -> None: ...

class Capabilities(_message.Message):
    __slots__ = ("progressive_preview", "jobs", "exr_output", "causal_ref", "png_results", "shared_memory")
    PROGRESSIVE_PREVIEW_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    EXR_OUTPUT_FIELD_NUMBER: _ClassVar[int]
    CAUSAL_REF_FIELD_NUMBER: _ClassVar[int]
    PNG_RESULTS_FIELD_NUMBER: _ClassVar[int]
    SHARED_MEMORY_FIELD_NUMBER: _ClassVar[int]
    progressive_preview: bool
    jobs: bool
    exr_output: bool
    causal_ref: bool
    png_results: bool
    shared_memory: bool
    def __init__(self, progressive_preview: _Optional[bool] = ..., jobs: _Optional[bool] = ..., exr_output: _Optional[bool] = ..., causal_ref: _Optional[bool] = ..., png_results: _Optional[bool] = ..., shared_memory: _Optional[bool] = ...) -> None: ...

class Limits(_message.Message):
    __slots__ = ("max_frame_width", "max_frame_height", "max_window", "max_seed", "max_ring_bytes", "max_batch_frames", "max_batch_bytes")
    MAX_FRAME_WIDTH_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAME_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MAX_WINDOW_FIELD_NUMBER: _ClassVar[int]
    MAX_SEED_FIELD_NUMBER: _ClassVar[int]
    MAX_RING_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_BYTES_FIELD_NUMBER: _ClassVar[int]
    max_frame_width: int
    max_frame_height: int
    max_window: int
    max_seed: int
    max_ring_bytes: int
    max_batch_frames: int
    max_batch_bytes: int
    def __init__(self, max_frame_width: _Optional[int] = ..., max_frame_height: _Optional[int] = ..., max_window: _Optional[int] = ..., max_seed: _Optional[int] = ..., max_ring_bytes: _Optional[int] = ..., max_batch_frames: _Optional[int] = ..., max_batch_bytes: _Optional[int] = ...) -> None: ...

class InfoReply(_message.Message):
    __slots__ = ("daemon_version", "protocol_major", "protocol_minor", "gpus", "loaded_model", "models", "qualities", "capabilities", "max_message_bytes", "warnings", "preview_address", "output_root", "device", "limits")
    DAEMON_VERSION_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_MAJOR_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_MINOR_FIELD_NUMBER: _ClassVar[int]
    GPUS_FIELD_NUMBER: _ClassVar[int]
    LOADED_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    QUALITIES_FIELD_NUMBER: _ClassVar[int]
    CAPABILITIES_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_ROOT_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    daemon_version: str
    protocol_major: int
    protocol_minor: int
    gpus: _containers.RepeatedCompositeFieldContainer[Gpu]
    loaded_model: str
    models: _containers.RepeatedScalarFieldContainer[str]
    qualities: _containers.RepeatedScalarFieldContainer[str]
    capabilities: Capabilities
    max_message_bytes: int
    warnings: _containers.RepeatedScalarFieldContainer[str]
    preview_address: str
    output_root: str
    device: str
    limits: Limits
    def __init__(self, daemon_version: _Optional[str] = ..., protocol_major: _Optional[int] = ..., protocol_minor: _Optional[int] = ..., gpus: _Optional[_Iterable[_Union[Gpu, _Mapping]]] = ..., loaded_model: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., qualities: _Optional[_Iterable[str]] = ..., capabilities: _Optional[_Union[Capabilities, _Mapping]] = ..., max_message_bytes: _Optional[int] = ..., warnings: _Optional[_Iterable[str]] = ..., preview_address: _Optional[str] = ..., output_root: _Optional[str] = ..., device: _Optional[str] = ..., limits: _Optional[_Union[Limits, _Mapping]] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("config", "width", "height", "frames")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    width: int
    height: int
    frames: int
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., frames: _Optional[int] = ...) -> None: ...

class PlanReply(_message.Message):
    __slots__ = ("fits", "model", "device", "gpu_name", "gpu_memory_bytes", "offload", "peak_gib", "usable_gib", "gpus_per_window", "seconds_per_window", "windows", "total_seconds", "basis", "summary", "advice", "notes")
    FITS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    GPU_NAME_FIELD_NUMBER: _ClassVar[int]
    GPU_MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFLOAD_FIELD_NUMBER: _ClassVar[int]
    PEAK_GIB_FIELD_NUMBER: _ClassVar[int]
    USABLE_GIB_FIELD_NUMBER: _ClassVar[int]
    GPUS_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SECONDS_PER_WINDOW_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    BASIS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    ADVICE_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    fits: bool
    model: str
    device: str
    gpu_name: str
    gpu_memory_bytes: int
    offload: str
    peak_gib: float
    usable_gib: float
    gpus_per_window: int
    seconds_per_window: float
    windows: int
    total_seconds: float
    basis: str
    summary: str
    advice: str
    notes: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, fits: _Optional[bool] = ..., model: _Optional[str] = ..., device: _Optional[str] = ..., gpu_name: _Optional[str] = ..., gpu_memory_bytes: _Optional[int] = ..., offload: _Optional[str] = ..., peak_gib: _Optional[float] = ..., usable_gib: _Optional[float] = ..., gpus_per_window: _Optional[int] = ..., seconds_per_window: _Optional[float] = ..., windows: _Optional[int] = ..., total_seconds: _Optional[float] = ..., basis: _Optional[str] = ..., summary: _Optional[str] = ..., advice: _Optional[str] = ..., notes: _Optional[_Iterable[str]] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("input", "depth", "normals", "output", "format", "config", "fps")
    INPUT_FIELD_NUMBER: _ClassVar[int]
    DEPTH_FIELD_NUMBER: _ClassVar[int]
    NORMALS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    input: str
    depth: str
    normals: str
    output: str
    format: OutputFormat
    config: SessionConfig
    fps: float
    def __init__(self, input: _Optional[str] = ..., depth: _Optional[str] = ..., normals: _Optional[str] = ..., output: _Optional[str] = ..., format: _Optional[_Union[OutputFormat, str]] = ..., config: _Optional[_Union[SessionConfig, _Mapping]] = ..., fps: _Optional[float] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "state", "frames_total", "frames_done", "output", "error", "created", "updated", "spec")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    FRAMES_TOTAL_FIELD_NUMBER: _ClassVar[int]
    FRAMES_DONE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    UPDATED_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: JobState
    frames_total: int
    frames_done: int
    output: str
    error: str
    created: float
    updated: float
    spec: JobSpec
    def __init__(self, id: _Optional[str] = ..., state: _Optional[_Union[JobState, str]] = ..., frames_total: _Optional[int] = ..., frames_done: _Optional[int] = ..., output: _Optional[str] = ..., error: _Optional[str] = ..., created: _Optional[float] = ..., updated: _Optional[float] = ..., spec: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class JobRef(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class JobEvent(_message.Message):
    __slots__ = ("job", "progress")
    JOB_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    job: Job
    progress: Progress
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., progress: _Optional[_Union[Progress, _Mapping]] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListJobsReply(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...
