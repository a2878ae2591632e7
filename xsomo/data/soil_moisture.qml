<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<!-- xsomo: volumetric soil moisture (m3 m-3), sequential YlGnBu 0.05-0.50. Shipped with xsomo (xsomo/data) and the QGIS plugin; one copy. -->
<qgis version="3.22.0" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <provider>
      <resampling enabled="false" zoomedInResamplingMethod="nearestNeighbour" zoomedOutResamplingMethod="nearestNeighbour" maxOversampling="2"/>
    </provider>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="0.05" classificationMax="0.5">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="2" minimumValue="0.05" maximumValue="0.5" clip="0" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="255,255,217,255"/>
              <Option type="QString" name="color2" value="8,29,88,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.125;237,248,177,255:0.25;199,233,180,255:0.375;127,205,187,255:0.5;65,182,196,255:0.625;29,145,192,255:0.75;34,94,168,255:0.875;37,52,148,255"/>
            </Option>
            <prop k="color1" v="255,255,217,255"/>
            <prop k="color2" v="8,29,88,255"/>
            <prop k="discrete" v="0"/>
            <prop k="rampType" v="gradient"/>
            <prop k="stops" v="0.125;237,248,177,255:0.25;199,233,180,255:0.375;127,205,187,255:0.5;65,182,196,255:0.625;29,145,192,255:0.75;34,94,168,255:0.875;37,52,148,255"/>
          </colorramp>
            <item alpha="255" value="0.05" label="0.05" color="#ffffd9"/>
            <item alpha="255" value="0.1" label="0.1" color="#eff9b5"/>
            <item alpha="255" value="0.15" label="0.15" color="#cfecb3"/>
            <item alpha="255" value="0.2" label="0.2" color="#97d6b9"/>
            <item alpha="255" value="0.25" label="0.25" color="#5dc0c0"/>
            <item alpha="255" value="0.3" label="0.3" color="#31a6c2"/>
            <item alpha="255" value="0.35" label="0.35" color="#1f80b8"/>
            <item alpha="255" value="0.4" label="0.4" color="#2355a4"/>
            <item alpha="255" value="0.45" label="0.45" color="#22318d"/>
            <item alpha="255" value="0.5" label="0.5" color="#081d58"/>
          <rampLegendSettings minimumLabel="" maximumLabel="" prefix="" suffix="" direction="0" useContinuousLegend="1" orientation="2">
            <numericFormat id="basic">
              <Option type="Map">
                <Option type="QChar" name="decimal_separator" value=""/>
                <Option type="int" name="decimals" value="6"/>
                <Option type="int" name="rounding_type" value="0"/>
                <Option type="bool" name="show_plus" value="false"/>
                <Option type="bool" name="show_thousand_separator" value="true"/>
                <Option type="bool" name="show_trailing_zeros" value="false"/>
                <Option type="QChar" name="thousand_separator" value=""/>
              </Option>
            </numericFormat>
          </rampLegendSettings>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" grayscaleMode="0" saturation="0" invertColors="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
